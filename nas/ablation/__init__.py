"""Ablation studies: a study file names a claim, arms that change a base architecture and the comparisons that
decide the claim; the runs (arms x seeds) go through the one trial executor; statistics give each comparison a
verdict. Modules: study (the file format), overrides (paths such as `stages[*].mixer`), claims (metrics and
comparisons), plan (runs from a study), store (the folder), run (the executor producer), stats, report."""
