"""`vitnas export`: a trial, checkpoint, config or preset as standalone PyTorch (model.py, weights.pt, train.py).

Lift, don't restate: the exported code is the library's own source, collected by `lift` and `construct`, so it is
the same code by construction. source -> what to export; model_file / train_file -> the two scripts; check -> the
exported model against the vitnas model; onnx_file -> model.onnx; writer -> the folder.
"""
