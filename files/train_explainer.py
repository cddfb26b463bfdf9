"""Train the explainer that keeps the patient: E(x, target) = Δ, the image switched to another label
being clip(x + Δ); the map of an image is its own Δ (cganlib/explainer.py says how it learns). The
original's cGAN and its scripts are untouched; explain_image.py --explainer uses what this writes.
--architecture encoder_decoder draws the switched image from a code of the image instead (no skip
connections; --latent_weight makes the code blind to the label, as Fader Networks do); its map is
the switched image's difference from the image drawn under its own label. --architecture inversion
--model G.h5 trains an encoder to the latent from which the trained cGAN generator G (frozen) draws
each image under its own label; explain_image.py --explainer starts its projection there and, with
--tune_steps, tunes G to each patient.

Reads   the prepared arrays, as train_cgan.py (<data_dir>/img_align_xray.npz + labels, ...)
        --held_out_from: a train_classifier.py held_out.npz whose `held_out` images are left out
            of training (default <data_dir>/classifier/held_out.npz when there is one), so that
            the images explained later were never seen; `none` trains on every image
        --guide: optionally a train_classifier.py model whose cross-entropy for the target
            (--guide_weight) pushes the switch; never the judge that measures it
Writes  <out_dir> (default <data_dir>/explainer):
          run_config.json                the flags, the resolved config, the classes, the data
                                         files' sizes and SHA-256 (written before epoch 1)
          explainer_NNN.weights.h5       the explainer's weights after epoch NNN
          explainer_state_NNN.npz        the critic's weights and both optimizers' variables
                                         (inversion: the encoder's optimizer's)
          switched_eNNN.png              a few training images, switched to every other label,
                                         and the change (red: brighter, blue: darker); a redrawing
                                         explainer's (encoder_decoder, inversion) also drawn under
                                         its own label, the change counted from that drawing
          history.csv                    the epoch's mean losses; its row is written last and
                                         makes the epoch complete

An epoch is a pass over the training images in batches of --n_batch, drawn from (--seed, epoch),
so --qRestart goes on bit for bit on the CPU: it continues the run in --out_dir with its
run_config.json's settings, from --epochs_done (default: the newest complete epoch) to
--epochs_goal; a flag that contradicts the run is refused; --overwrite starts again.

    python files/train_explainer.py --dataset xray --data_dir demo_run --epochs_goal 20
    python files/train_explainer.py --dataset xray --data_dir demo_run --qRestart --epochs_goal 30
"""

import os

from cganlib import cli, config, flags

HELD_OUT_DEFAULT = os.path.join(flags.CLASSIFIER_DIR, flags.HELD_OUT_FILE)
OUT_NAME = "explainer"


def add_config_flags(p):
    """One flag per ExplainerConfig field, default None: the config's value (or, on a restart, the run's)."""
    defaults = config.ExplainerConfig()
    kinds = {int: cli.POSITIVE, float: cli.number(0)}
    helps = {"filters": "the U-Net's and the critic's width", "n_batch": "images a step (even)",
             "lr": "Adam's learning rate, both models", "beta1": "Adam's beta_1", "beta2": "Adam's beta_2",
             "identity_weight": "weight of the change under the image's own label",
             "l1_weight": "weight of the switched images' mean absolute change",
             "tv_weight": "weight of the change's total variation",
             "cycle_weight": "weight of the cycle back to the image",
             "guide_weight": "weight of --guide's cross-entropy for the target",
             "ramp_steps": "steps over which the identity, L1 and TV weights grow from a tenth to their values",
             "grey": "one change for all three channels: grey images (X-rays) stay grey",
             "architecture": "the explainer: the U-Net adding a change, the encoder-decoder drawing the image "
                             "from a code without skips, or inversion: an encoder to --model's latent",
             "latent_weight": "encoder_decoder: weight of the label a latent critic reads from the code"}
    for name in config.EXPLAINER_HYPERPARAMETERS:
        value = getattr(defaults, name)
        if isinstance(value, bool):  # a switch: off unless given (on, a restart keeps the run's)
            p.add_argument(f"--{name}", action="store_true", default=None, help=helps[name])
            continue
        if isinstance(value, str):
            p.add_argument(f"--{name}", choices=config.EXPLAINER_ARCHITECTURES,
                           help=f"{helps[name]} (default {value}; a restart: the run's)")
            continue
        kind = (cli.RATE if name == "lr" else cli.BETA if name.startswith("beta") else cli.integer(0)
                if name == "ramp_steps" else kinds[type(value)])
        p.add_argument(f"--{name}", type=kind, help=f"{helps[name]} (default {value:g}; a restart: the run's)")


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    flags.add_dataset_flags(p)
    flags.add_attributes_flag(p)
    p.add_argument("--out_dir", help=f"the run's folder (default: <data_dir>/{OUT_NAME})")
    p.add_argument("--held_out_from",
                   help=f"images left out of training: a held_out.npz, or none (default: <data_dir>/{HELD_OUT_DEFAULT} if there)")
    p.add_argument("--guide", help="a train_classifier.py model for --guide_weight")
    p.add_argument("--model", help="--architecture inversion: the train_cgan.py generator .h5 whose latent the encoder learns")
    p.add_argument("--epochs_goal", type=cli.POSITIVE, default=20, help="train up to this epoch")
    p.add_argument("--qRestart", action="store_true", help="go on with the run in --out_dir")
    p.add_argument("--epochs_done", type=cli.integer(1), help="with --qRestart: go on from this epoch (default: the newest)")
    p.add_argument("--overwrite", action="store_true", help="start again in a folder that holds a run")
    p.add_argument("--seed", type=cli.SEED, help="seed of the weights, the batches and the targets (default 0)")
    add_config_flags(p)
    args = flags.parse_dataset_args(p, argv)
    args.out_dir = args.out_dir or os.path.join(args.data_dir, OUT_NAME)
    if args.epochs_done is not None and not args.qRestart:
        p.error("--epochs_done goes with --qRestart")
    if args.qRestart and args.overwrite:
        p.error("--qRestart goes on with a run, --overwrite starts again: give one")
    if args.n_batch is not None and args.n_batch % 2:
        p.error(f"--n_batch: must be even (half keep their labels, half are switched), got {args.n_batch}")
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import explainer_training

    with cli.exit_on_bad_input():
        explainer_training.run(args)


if __name__ == "__main__":
    main()
