"""Train the conditional GAN on prepared faces, chest X-rays or your own classes, as the original did.

Reads   <data_dir>/img_align_celeba_attractive.npz + ids_align_celeba_attractive.npz
        + list_attr_celeba.csv (faces), <data_dir>/img_align_xray.npz + labels_align_xray.npz,
        or <data_dir>/img_align_folder.npz + labels_align_folder.npz + classes.json (folder)
Writes  <out_dir>/run_config.json (the run's settings, before epoch 1); every epoch
        generator_model_NNN.h5, generator_model_ganNNN.h5, generator_model_disNNN.h5,
        generated_plot_eNNN.png, train_state_NNN.npz, then its row of history.csv (the epoch is
        complete) and losses.png; <out_dir>/real_plots/real_plot_eNNN.png; <summary_dir>/*_summary.txt

    python files/train_cgan.py --dataset xray --epochs_goal 100
    python files/train_cgan.py --dataset folder --preset small --epochs_goal 40   # learns on a CPU
    python files/train_cgan.py --dataset xray --qRestart --epochs_goal 150     # with the run's own settings
    python files/train_cgan.py --dataset xray --qRestart --epochs_done 405 --epochs_goal 410
    python files/train_cgan.py --dataset xray --strategy mirrored    # on every GPU here; several machines: README

The hyperparameters come from --preset (original: the original's values; small: width 16,
batches of 16 and faster rates, which learn on a CPU in minutes); a flag typed beside it wins.
"""

import argparse
import dataclasses
import os
import shlex
import sys
import tempfile

from cganlib import cli, config, datasets, run_folder
from cganlib.storage import InputError, fail, writable_folder

EXIT_WRITE_FAILED = 1  # a write failed (disk full, folder gone); the epochs before it are complete
# What a restart sets; every other flag belongs to the run and comes back from run_config.json.
RESTART_FLAGS = ("qRestart", "overwrite", "out_dir", "epochs_done", "epochs_goal")
# Flags that describe the machine rather than the experiment, which a restart may change too.
MACHINE_FLAGS = ("strategy", "cpu_devices", "worker_timeout")
ORIGINAL, SMALL = config.resolve("xray"), config.resolve("xray", "small")
# A saved generator's latent input is told from its label input, (1,), by its size: a latent of
# size 1 would make every later script (and --qRestart) refuse the run's models.
MIN_LATENT_DIM = 2


def per_preset(name):
    return f"default: {getattr(ORIGINAL, name):g}, or {getattr(SMALL, name):g} with --preset small"


def build_parser():
    p = cli.Parser(__doc__)
    p.add_argument("--dataset", required=True, choices=datasets.DATASET_NAMES,
                   help="celeb, xray, or folder (your own classes, from prepare_folders.py)")
    p.add_argument("--data_dir", help="folder of the prepared .npz files (default: files/<dataset>)")
    p.add_argument("--out_dir", "--results_dir", dest="out_dir",
                   help="where models, plots and history go (default: <data_dir>/results)")
    p.add_argument("--attributes", help="faces only: attribute table (default: <data_dir>/list_attr_celeba.csv, or .txt)")
    p.add_argument("--summary_dir", help="where the models' summaries go (default: <out_dir>/summaries)")
    p.add_argument("--qRestart", action="store_true",
                   help="continue the run in --out_dir, with the settings in its run_config.json")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in an --out_dir that holds a run, removing that run's files first")
    p.add_argument("--epochs_done", "--epochs-done", type=cli.POSITIVE,
                   help="with --qRestart: the complete epoch to resume from (default: the newest)")
    p.add_argument("--epochs_goal", "--epochs-goal", "--epochs", type=cli.POSITIVE, default=100,
                   help="train up to this epoch (default: %(default)s)")
    p.add_argument("--preset", choices=tuple(config.PRESETS), default="original",
                   help="the hyperparameters' defaults: original (the original's) or small (width 16, batch 16, "
                        "d_lr 0.0005, g_lr 0.005, d_beta1 0.5: learns on a CPU); default: %(default)s")
    p.add_argument("--n_batch", "--batch_size", type=cli.integer(2),
                   help=f"batch size, even: half real, half generated for d ({per_preset('n_batch')})")
    p.add_argument("--latent_dim", type=cli.integer(MIN_LATENT_DIM),
                   help=f"size of the latent vector, at least {MIN_LATENT_DIM} ({per_preset('latent_dim')})")
    p.add_argument("--filters", type=cli.POSITIVE, help=f"width of every conv layer ({per_preset('filters')})")
    p.add_argument("--d_lr", type=cli.RATE, help="discriminator learning rate (default: celeb and folder 0.00007, "
                                                 "xray 0.00004; 0.0005 with --preset small)")
    p.add_argument("--gan_upper", type=cli.number(0, low_open=True),
                   help="reload the snapshot when the GAN loss is above this (default: celeb and folder 4.5, xray 3)")
    p.add_argument("--d_beta1", type=cli.BETA, help=f"discriminator Adamax beta_1 ({per_preset('d_beta1')})")
    p.add_argument("--g_lr", type=cli.RATE, help=f"GAN (generator) learning rate ({per_preset('g_lr')})")
    p.add_argument("--label_smoothing", type=cli.number(0, 1, low_open=True), metavar="TARGET",
                   help="one-sided label smoothing: the discriminator's target for real images, e.g. 0.9 "
                        "(default: 1, none); the generator's targets stay 1")
    p.add_argument("--spectral_norm", action="store_true", default=None,
                   help="spectral normalization on the discriminator's convolution and dense layers (default: off)")
    p.add_argument("--diff_augment", type=cli.comma_list(config.AUGMENTATIONS), metavar="POLICY",
                   help="DiffAugment (Zhao et al. 2020) on every image d sees, real and generated: a comma list of "
                        "color, translation, cutout (default: none)")
    p.add_argument("--mbstd_group", type=cli.integer(0), metavar="N",
                   help="the minibatch standard deviation layer (Karras et al. 2018, ProGAN) before d's last dense "
                        "layer, over groups of N images; N must divide the half batch, StyleGAN2-ADA uses 4 "
                        "(default: 0, off)")
    p.add_argument("--r1_weight", type=cli.number(0), metavar="GAMMA",
                   help="the R1 penalty (Mescheder et al. 2018) in d's step on real images: GAMMA/2 times the mean "
                        "squared norm of the gradient of d's logit at them; the log's d1 stays the cross-entropy "
                        "alone (default: 0, off)")
    p.add_argument("--d_steps", type=cli.POSITIVE, metavar="K",
                   help="K discriminator updates, each on a fresh real and a fresh generated half batch, per "
                        "generator update (the k of Goodfellow et al. 2014; WGAN's n_critic); an epoch keeps its "
                        "number of generator updates, the log's d1 and d2 are the last d update's (default: 1)")
    p.add_argument("--projection", action="store_true", default=None,
                   help="a projection discriminator (Miyato & Koyama 2018): the image alone through d's convolutions, "
                        "the label as the inner product of its embedding with the features, added to the logit "
                        "(default: off, the label as a 4th channel as the original)")
    p.add_argument("--mode_seeking", type=cli.number(0), metavar="WEIGHT",
                   help="MSGAN's mode-seeking loss (Mao et al. 2019) in the generator's loss at this weight: WEIGHT / "
                        "(ratio + 1e-5), ratio the distance between two images of one label over that between their "
                        "latents, over each half of the GAN step's batch (on several replicas, over each replica's share); "
                        "--preset small sets 0.1 (default: 0, off)")
    p.add_argument("--ema", type=cli.BETA, metavar="DECAY",
                   help="an exponential moving average of the generator's weights (Yazici et al. 2019) at this decay, "
                        "e.g. 0.999, ramped up as min(DECAY, (1+t)/(10+t)) at update t: the generator files, the "
                        "epoch's plot and fake accuracy are the average's; the trained weights go into "
                        "train_state_NNN.npz and the GAN's file (default: 0, off)")
    p.add_argument("--label_fade", type=cli.integer(0), metavar="STEPS",
                   help="transitional conditioning (Shahbazi et al. 2022): both models' label embeddings times a "
                        "factor growing from 0 (unconditional) to 1 over this many batches (default: 0, off)")
    p.add_argument("--resize_conv", action="store_true", default=None,
                   help="the generator upsamples by a nearest-neighbour resize and a 3x3 convolution (Odena et al. "
                        "2016) in place of the original's 4x4 transposed convolutions, whose uneven overlaps draw a "
                        "checkerboard (default: off)")
    p.add_argument("--mixed_precision", action="store_true",
                   help="compute in bfloat16 (weights and the guard's losses stay float32; default: off)")
    p.add_argument("--seed", type=cli.SEED, help="seed for a reproducible run (default: none, a fresh draw)")
    p.add_argument("--real_plots", type=cli.integer(0), default=2,
                   help="how many grids of real samples to draw first (default: %(default)s)")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                   help="default: one device; mirrored: this machine's GPUs (or --cpu_devices); "
                        "multiworker: the machines in TF_CONFIG (see README). A restart may change it")
    p.add_argument("--cpu_devices", type=cli.POSITIVE,
                   help="with --strategy mirrored: split the CPU into this many logical devices, one replica each")
    p.add_argument("--worker_timeout", type=cli.number(0, low_open=True), default=config.WORKER_TIMEOUT, metavar="SECONDS",
                   help="with --strategy multiworker: give up, naming the missing workers, when the cluster of "
                        "TF_CONFIG has not formed after this long (default: %(default)s)")
    return p


# run_config.json's hyperparameters that have no flag, checked as a flag would check them
UNFLAGGED_RULES = {"g_beta1": cli.BETA, "beta_2": cli.BETA, "epsilon": cli.number(0, low_open=True)}


def parse_args(argv=None):
    """(args, the names of the flags typed), checked; the namespace is not changed after."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n_batch is not None and args.n_batch % 2:
        parser.error(f"--n_batch must be even (two half batches), got {args.n_batch}")
    if args.cpu_devices and args.strategy != "mirrored":
        parser.error(f"--cpu_devices goes with --strategy mirrored, not --strategy {args.strategy}")
    # The same command line onto a namespace that has every flag already: argparse then fills in
    # no defaults, and what is left changed was typed.
    unset = object()
    typed = build_parser().parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(vars(args), unset)))
    given = frozenset(name for name, value in vars(typed).items() if value is not unset)
    if "worker_timeout" in given and args.strategy != "multiworker":
        parser.error(f"--worker_timeout goes with --strategy multiworker, not --strategy {args.strategy}")
    return args, given


# ---------------------------------------------------------------- the run's settings


def flag_rules():
    """{flag name: its argparse action}: the rules each flag's value follows."""
    return {action.dest: action for action in build_parser()._actions}


def command_line_flags(args):
    """The run's flags from the command line, each default filled in; the hyperparameters resolved."""
    flags = {name: value for name, value in vars(args).items() if name not in RESTART_FLAGS}
    flags["data_dir"] = args.data_dir or os.path.join("files", args.dataset)
    out_dir = args.out_dir or os.path.join(flags["data_dir"], "results")
    flags["attributes"] = args.attributes or datasets.attribute_table(flags["data_dir"])
    flags["summary_dir"] = args.summary_dir or os.path.join(out_dir, "summaries")
    resolved = config.resolve(args.dataset, args.preset, **{n: flags[n] for n in config.HYPERPARAMETERS if n in flags})
    flags.update({name: getattr(resolved, name) for name in config.HYPERPARAMETERS if name in flags})
    return flags, out_dir


def _same_setting(a, b):
    if isinstance(a, str) and isinstance(b, str):
        return os.path.normpath(a) == os.path.normpath(b)
    return a == b and isinstance(a, bool) == isinstance(b, bool)  # True == 1 in Python


def reconciled_flags(flags, given, recorded, path):
    """The run's recorded flags in place of flags not typed now; InputError for a typed flag that
    contradicts its recorded value. The machine's flags stay as they are now."""
    flags = dict(flags)
    for name, value in flags.items():
        if name in MACHINE_FLAGS or name not in recorded:
            continue
        if name in given and not _same_setting(value, recorded[name]):
            raise InputError(
                f"--{name} {cli.shown(value)} contradicts this run's --{name} {cli.shown(recorded[name])} "
                f"({path}); a restart keeps the run's settings: leave --{name} out"
            )
        flags[name] = recorded[name]
    return flags


def settle(args, given, out_dir=None):
    """The Run: the flags checked against the results folder (out_dir, a worker's own folder,
    in place of --out_dir); a restart takes the run's settings from its run_config.json."""
    flags, default_out = command_line_flags(args)
    out_dir = out_dir or default_out
    run_folder.check_not_in_use(out_dir)
    recorded = None
    if not args.qRestart:
        if args.epochs_done is not None:
            raise InputError("--epochs_done needs --qRestart")
        check_free(out_dir, args.overwrite)
        epochs_done = 0
    else:
        if args.overwrite:
            raise InputError("--overwrite starts a fresh run; it cannot go with --qRestart")
        recorded = run_folder.read_config(out_dir)
        if recorded is not None:
            path = os.path.join(out_dir, run_folder.RUN_CONFIG)
            cli.check_recorded(recorded.get("flags", {}), flag_rules(), path, "flag")
            flags = reconciled_flags(flags, given, recorded.get("flags", {}), path)
            run_folder.check_data_files(recorded.get("data_files", []))
        epochs_done = run_folder.restart_epoch(out_dir, args.epochs_done)
    if args.epochs_goal <= epochs_done:
        raise InputError(f"--epochs_goal {args.epochs_goal} must be above --epochs_done {epochs_done}")
    return config.Run(
        dataset=datasets.dataset_settings(flags["dataset"], flags["data_dir"]),
        config=train_config(flags, recorded, out_dir), preset=flags["preset"], data_dir=flags["data_dir"], attributes=flags["attributes"],
        out_dir=out_dir, summary_dir=flags["summary_dir"], epochs_done=epochs_done, epochs_goal=args.epochs_goal,
        restart=args.qRestart, from_run_config=recorded is not None, seed=flags["seed"],
        real_plots=flags["real_plots"], mixed_precision=flags["mixed_precision"], strategy=flags["strategy"],
        cpu_devices=flags["cpu_devices"], worker_timeout=flags["worker_timeout"],
    )


def check_free(out_dir, overwrite):
    """InputError when a fresh run without --overwrite would write into a folder that holds a run."""
    if run_folder.run_files(out_dir) and not overwrite:
        raise InputError(f"{out_dir} already holds a training run "
                         f"({run_folder.describe_epochs(run_folder.complete_epochs(out_dir))}); "
                         "use --qRestart to continue it or --overwrite to start again")


def check_unchanged(run, args):
    """Under the lock, settle's checks of the folder again: another run may have written it since
    they were made (while this one read its data), and this one would replace that run's files."""
    if not run.restart:
        check_free(run.out_dir, args.overwrite)
    elif run_folder.restart_epoch(run.out_dir, args.epochs_done) != run.epochs_done:
        raise InputError(f"another run wrote {run.out_dir} while this one started (resuming from epoch "
                         f"{run.epochs_done}); run the command again")


def train_config(flags, recorded, out_dir):
    """The config run_config.json recorded, or else the one the flags resolve to."""
    if recorded is None or "config" not in recorded:
        hyper = {name: flags[name] for name in config.HYPERPARAMETERS if name in flags}
        return config.resolve(flags["dataset"], flags["preset"], **hyper)
    path = os.path.join(out_dir, run_folder.RUN_CONFIG)
    try:
        recorded_config = config.TrainConfig.from_record(recorded["config"])
    except (TypeError, ValueError, AttributeError) as e:
        raise InputError(f"{path}: its config is not one of this version's ({e})") from e
    values = dataclasses.asdict(recorded_config)
    cli.check_recorded({name: values[name] for name in config.HYPERPARAMETERS}, flag_rules() | UNFLAGGED_RULES, path,
                   "config")
    config.check_guard(values["guard"], path)
    return recorded_config





def resume_command(run, given):
    """The command that continues this run: the machine flags typed besides the restart's own when
    run_config.json holds the run's settings, every setting spelled out for an old run without it."""
    cmd = ["python", "files/train_cgan.py", "--dataset", run.dataset.name, *flag_value("out_dir", run.out_dir),
           "--qRestart", "--epochs_goal", str(run.epochs_goal)]
    flags = run.flags()
    old_run = run.restart and not run.from_run_config
    spelled = [name for name in flags if name != "dataset"] if old_run else [n for n in MACHINE_FLAGS if n in given]
    for name in spelled:
        value = flags[name]
        if value is not None and value is not False:
            cmd += [f"--{name}"] if value is True else flag_value(name, value)
    return shlex.join(cmd)


def flag_value(name, value):
    """A flag and its value as arguments: one `--name=value` when the value starts with a dash,
    which argparse would take for a flag of its own (`--out_dir -dashrun`)."""
    return [f"--{name}={value}"] if str(value).startswith("-") else [f"--{name}", str(value)]


# ---------------------------------------------------------------- the run


def follow_the_chief(args, given, folder):
    """A worker beside the chief of a multi-worker run trains as the chief does, in step with it,
    and writes into folder, a temporary one: the run's files are the chief's. A restart reads the
    chief's run in --out_dir (a shared folder, or a copy on each machine) through links, so
    every worker resumes from the same checkpoint."""
    if args.qRestart:
        for path in run_folder.run_files(command_line_flags(args)[1]):
            os.symlink(os.path.abspath(path), os.path.join(folder, os.path.basename(path)))
    return dataclasses.replace(settle(args, given, out_dir=folder), summary_dir=os.path.join(folder, "summaries"))


def train(run, args):
    from cganlib import distribution, training

    images, labels = training.load_dataset(run)
    strategy, bfloat16, models = training.set_up(run)
    writable_folder(run.summary_dir)
    writable_folder(run.real_plots_dir)
    with run_folder.locked(run.out_dir):
        check_unchanged(run, args)
        removed, kept = run_folder.prepare_folder(run, args.overwrite)
        print(training.settings_line(run, images, labels, bfloat16), flush=True)
        if run.mixed_precision and not bfloat16:
            print("--mixed_precision: this CPU has no bfloat16 arithmetic (AVX-512 BF16 or AMX) and oneDNN would "
                  "emulate it, several times slower than float32; this run computes in float32", flush=True)
        if run.strategy != "default":
            print(distribution.describe(run.strategy, strategy, run.config.n_batch), flush=True)
        if run.restart and not run.from_run_config:
            print(f"{run.out_dir} has no {run_folder.RUN_CONFIG} (a run begun before it was written): "
                  "the settings come from the command line", flush=True)
        if removed:
            print(f"removed {removed} temporary file(s) of writes a killed run left", flush=True)
        if kept:
            print(f"--overwrite removed the old run's files; {len(kept)} file(s) its history and config do not name "
                  f"stay: {', '.join(kept)}", flush=True)
        return training.start(run, images, labels, models, strategy)


def stopped(run, given, how, status):
    """A run stopped by Ctrl-C or SIGTERM: print the command that resumes it; returns status."""
    if run is None:
        print(f"\n{how} before training began; nothing was written", file=sys.stderr)
    elif run_folder.complete_epochs(run.out_dir):
        print(f"\n{how}; resume with:\n  {resume_command(run, given)}", file=sys.stderr)
    else:
        print(f"\n{how} before the first epoch was complete; start again with --overwrite", file=sys.stderr)
    return status


def main(argv=None):
    args, given = parse_args(argv)
    run = None
    with cli.exit_on_bad_input():
        try:
            # TensorFlow loads here, after the arguments are checked
            from cganlib.distribution import is_chief

            if is_chief(args.strategy):
                run = settle(args, given)
                return train(run, args)
            with tempfile.TemporaryDirectory(prefix="cgan-worker-") as folder:
                run = follow_the_chief(args, given, folder)
                return train(run, args)
        except KeyboardInterrupt:
            return stopped(run, given, "interrupted", cli.EXIT_INTERRUPTED)
        except SystemExit as e:  # SIGTERM (kill), as cli.exit_on_bad_input raises it
            if e.code != cli.EXIT_TERMINATED:
                raise
            return stopped(run, given, "terminated", cli.EXIT_TERMINATED)
        except OSError as e:  # a full disk, a folder gone or made read-only
            where, why = cli.os_error_parts(e)
            if run is None:
                fail(f"{where}: {why}")
            done = run_folder.complete_epochs(run.out_dir)
            then = f"resume with: {resume_command(run, given)}" if done else "start again with --overwrite"
            fail(f"writing {where or run.out_dir} failed: {why}; {run_folder.describe_epochs(done)} in {run.out_dir}; "
                 f"make room, then {then}", status=EXIT_WRITE_FAILED)


if __name__ == "__main__":
    sys.exit(main())
