"""Latent-vector arithmetic on faces: the average latent point of a
neutral man, minus that of a smiling man, plus that of a smiling woman, generated as a
woman (label 2) gives a neutral woman.

Step 1, with --save_points: draw 100 latent points from a standard normal and save them with
a numbered 10x10 grid of their images (labels 1 male or 2 female at random, as the original),
so you can pick which numbers look like a neutral man, a smiling man, a smiling woman.
Step 2, without it: load the points, average each group of (1-based) numbers, and draw.

Reads   <models_dir>/generator_model_NNN.h5 for --epoch NNN (default 200, models_dir <data_dir>/results)
        <out_dir>/latent_points_NNN.npz (step 2; default out_dir <data_dir>/arithmetic)
Writes  step 1: <out_dir>/latent_points_NNN.npz (arr_0: 100 x latent size) and latent_points_NNN.png
        step 2: <out_dir>/latent_arithmetic_NNN.png, each group's images and their average
                (labels 1, 1, 2) and the result (label 2), and latent_arithmetic_NNN.npz with
                its latents, labels and images (float32 in [0, 1]) in the figure's order

    python files/latent_arithmetic.py --save_points
    python files/latent_arithmetic.py --neutral_man 2 18 21 26 --smiling_man 32 44 45 47 --smiling_woman 3 55 62 80
"""

import os

from cganlib import cli
from cganlib.datasets import default_data_dir

# (name, flag, default 1-based point numbers, label)
GROUPS = (
    ("neutral man", "neutral_man", (2, 18, 21, 26), 1),
    ("smiling man", "smiling_man", (32, 44, 45, 47), 1),
    ("smiling woman", "smiling_woman", (3, 55, 62, 80), 2),
)


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--data_dir", default=default_data_dir("celeb"), help="the faces' folder")
    p.add_argument("--models_dir", help="folder of generator .h5 files (default: <data_dir>/results)")
    p.add_argument("--epoch", type=cli.integer(0), default=200, help="which saved generator to use")
    p.add_argument("--out_dir", help="where points and figures go (default: <data_dir>/arithmetic)")
    p.add_argument("--points", help="the latent points file (default: <out_dir>/latent_points_NNN.npz)")
    p.add_argument("--save_points", action="store_true", help="step 1: draw, save and show numbered points")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the points and of the grid's labels")
    for name, flag, numbers, label in GROUPS:
        p.add_argument(f"--{flag}", type=cli.POSITIVE, nargs="+", default=list(numbers), metavar="K",
                       help=f"numbers of {name} points, from 1 (label {label}; default: {' '.join(map(str, numbers))})")
    p.add_argument("--show", action="store_true", help="also open the figure in a window")
    args = p.parse_args(argv)
    args.models_dir = args.models_dir or os.path.join(args.data_dir, "results")
    args.out_dir = args.out_dir or os.path.join(args.data_dir, "arithmetic")
    args.points = args.points or os.path.join(args.out_dir, f"latent_points_{args.epoch:03d}.npz")
    args.groups = [(name, getattr(args, flag), label) for name, flag, _, label in GROUPS]
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import latent_space

    with cli.exit_on_bad_input():
        latent_space.points_or_arithmetic(args)
    print(f"written to {args.out_dir}")


if __name__ == "__main__":
    main()
