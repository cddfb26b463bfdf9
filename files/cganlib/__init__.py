"""The modules the scripts in files/ share: the models, the training, the datasets, the
delta heatmaps, the scoring and the files on disk. Importing the package loads nothing;
each module that needs TensorFlow imports `cganlib.tensorflow_env` first."""
