"""Walk the latent space (the original's "vectorize" script): for each saved
generator, the heatmaps' interpolated latents (10 steps between two latent points per sample)
generated with every class label, so a row shows one label's images along the walk.

Reads   <models_dir>/*.h5 generators, chosen as heatmaps.py does (default <data_dir>/results)
Writes  <out_dir>/latent_walk_NNN.png per model (default out_dir <data_dir>/latent_walk):
        rows grouped by sample, one row of 10 images per label, each named by its label

    python files/latent_walk.py --dataset celeb --epochs 205
"""

from cganlib import cli, flags

OUT_NAME = "latent_walk"
N_SAMPLES = 3


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    flags.add_model_flags(p, OUT_NAME, "labels to walk with (default: every class)",
                    f"latent pairs to walk between (default: {N_SAMPLES})")
    args = flags.parse_model_args(p, argv, OUT_NAME)
    args.labels = tuple(args.labels if args.labels is not None else range(args.settings.n_classes))
    args.n_samples = args.n_samples or N_SAMPLES
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import latent_space

    with cli.exit_on_bad_input():
        latent_space.draw_walks(args)
    print(f"figures in {args.out_dir}")


if __name__ == "__main__":
    main()
