"""Architecture configs, the MetaFormer building blocks and the builder. Imports torch only, never `nas` or `cli`."""
