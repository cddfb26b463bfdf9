"""The training's hyperparameters in one frozen object, TrainConfig, with the original's values;
the per-dataset defaults; the presets; and the run around it (Run: folders, epochs, seed,
machine). The command line, the demo, the benchmarks and run_config.json all go through
resolve(). No TensorFlow here: train_cgan.py settles a run before TensorFlow loads.

Which value wins, lowest first: the original's (TrainConfig's defaults), the dataset's
(DATASET_DEFAULTS), the preset's (PRESETS), a flag typed on the command line.
"""

import dataclasses
import math
import os
from dataclasses import dataclass, field

from cganlib.storage import InputError

AUGMENTATIONS = ("color", "translation", "cutout")  # DiffAugment's operations, in the paper's order


@dataclass(frozen=True)
class GuardBands:
    """The original's mode-collapse recovery (collapse_guard.py reads these)."""

    save_d1: tuple = (0.30, 0.95)  # save band: all three losses strictly inside these
    save_d2: tuple = (0.25, 0.95)
    save_g: tuple = (0.40, 1.50)
    min_batches_between_saves: int = 8  # snapshot only if ij - ijSave > this
    d_loss_low: float = 0.001  # reload rules: a d loss outside [low, high] reloads
    d_loss_high: float = 2.0
    g_loss_low: float = 0.010  # the GAN loss's upper limit is TrainConfig.gan_upper (per dataset)
    max_trips: int = 20  # stop when nTripsOnSameSavedWts exceeds this


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of the training, with the original's values."""

    n_batch: int = 64  # half real, half generated for the discriminator; the GAN step takes n_batch latents
    filters: int = 128  # width of every convolution of both models
    latent_dim: int = 100
    d_lr: float = 0.00004  # per dataset: DATASET_DEFAULTS
    d_beta1: float = 0.08  # discriminator Adamax
    g_lr: float = 0.0002  # GAN (generator) Adamax
    g_beta1: float = 0.5
    beta_2: float = 0.999  # both optimizers
    epsilon: float = 1e-7
    gan_upper: float = 3.0  # per dataset: a GAN loss above this reloads the last snapshot
    label_smoothing: float = 1.0  # the discriminator's target for real images; below 1: one-sided smoothing
    spectral_norm: bool = False  # on the discriminator's convolution and dense layers
    diff_augment: str = ""  # DiffAugment's operations on every image d sees, e.g. "color,translation,cutout"
    mbstd_group: int = 0  # above 0: d's minibatch standard deviation layer over groups of this many images
    r1_weight: float = 0.0  # above 0: gamma of the R1 penalty on d's gradient at real images
    d_steps: int = 1  # discriminator updates (each on fresh real and fake half batches) per generator update
    projection: bool = False  # a projection discriminator in place of the label map beside the image
    mode_seeking: float = 0.0  # the weight of MSGAN's mode-seeking term in the generator's loss; 0: off
    ema: float = 0.0  # the decay of the generator's moving average, which its saved files hold; 0: off
    label_fade: int = 0  # the label fades into both models over this many batches; 0: off
    resize_conv: bool = False  # g upsamples by a nearest-neighbour resize and a convolution, not transposed ones
    guard: GuardBands = field(default_factory=GuardBands)

    def record(self):
        """As run_config.json stores it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record):
        """The config run_config.json recorded; ValueError when it is not one."""
        record = dict(record)
        guard = GuardBands(**{k: tuple(v) if isinstance(v, list) else v for k, v in record.pop("guard", {}).items()})
        return cls(**record, guard=guard)


# The dataset's values where the original's two scripts differed. A folder of your own images
# takes the faces' values: they were tuned on varied photographs, the X-rays' on near-identical
# grey images.
DATASET_DEFAULTS = {
    "celeb": {"d_lr": 0.00007, "gan_upper": 4.50},
    "xray": {"d_lr": 0.00004, "gan_upper": 3.00},
    "folder": {"d_lr": 0.00007, "gan_upper": 4.50},
}

# original: the original's values. small: what learns on a CPU in minutes (the demo's): at width
# 16 the original's rates leave the generator flat grey for hundreds of batches, g_lr 0.005 draws
# anatomy within 10 epochs and d_lr 0.0005 lets the label be learnt; batches of 16 bring the
# findings after about as many steps as batches of 64, each a third of the time. The generator this
# fast collapses every class when the label is learnt (about 800 steps); MSGAN's mode-seeking term at
# 0.1 kept all of them apart in two seeds (files/RESULTS.md, "Ending the collapse").
PRESETS = {
    "original": {},
    "small": {"filters": 16, "n_batch": 16, "d_lr": 0.0005, "g_lr": 0.005, "d_beta1": 0.5, "mode_seeking": 0.1},
}
HYPERPARAMETERS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "guard")


def resolve(dataset, preset="original", **given):
    """The TrainConfig of a dataset under a preset, the values given winning; None values are
    not given."""
    values = {**DATASET_DEFAULTS[dataset], **PRESETS[preset], **{k: v for k, v in given.items() if v is not None}}
    return TrainConfig(**values)


def differences(config, dataset, preset):
    """{name: value} of the hyperparameters where config differs from the preset's: the flags to
    pass beside --preset to get config."""
    base = resolve(dataset, preset)
    return {name: getattr(config, name) for name in HYPERPARAMETERS if getattr(config, name) != getattr(base, name)}


# seconds a multi-worker run waits for every worker of TF_CONFIG to join (train_cgan.py's --worker_timeout)
WORKER_TIMEOUT = 600


@dataclass(frozen=True)
class Run:
    """One training run, settled from the command line and the run folder: its config and data,
    where it writes, which epochs, and the machine's settings."""

    dataset: object  # datasets.Dataset
    config: TrainConfig
    preset: str
    data_dir: str
    attributes: str  # faces: the attribute table
    out_dir: str  # the run's folder: models, plots, history, run_config.json
    summary_dir: str
    epochs_done: int  # 0 for a fresh run
    epochs_goal: int
    restart: bool
    from_run_config: bool  # a restart whose settings came from its run_config.json
    seed: int = None
    real_plots: int = 2
    mixed_precision: bool = False
    strategy: str = "default"
    cpu_devices: int = None
    worker_timeout: float = WORKER_TIMEOUT

    @property
    def real_plots_dir(self):
        return os.path.join(self.out_dir, "real_plots")

    def flags(self):
        """The run's settings as train_cgan.py's flags, as run_config.json records them."""
        c = self.config
        return {
            "dataset": self.dataset.name, "data_dir": self.data_dir, "attributes": self.attributes,
            "summary_dir": self.summary_dir, "preset": self.preset, "n_batch": c.n_batch, "latent_dim": c.latent_dim,
            "filters": c.filters, "d_lr": c.d_lr, "gan_upper": c.gan_upper, "d_beta1": c.d_beta1, "g_lr": c.g_lr,
            "label_smoothing": c.label_smoothing, "spectral_norm": c.spectral_norm, "diff_augment": c.diff_augment,
            "mbstd_group": c.mbstd_group, "r1_weight": c.r1_weight, "d_steps": c.d_steps,
            "projection": c.projection,
            "mode_seeking": c.mode_seeking, "ema": c.ema, "label_fade": c.label_fade,
            "resize_conv": c.resize_conv,
            "mixed_precision": self.mixed_precision, "seed": self.seed, "real_plots": self.real_plots,
            "strategy": self.strategy, "cpu_devices": self.cpu_devices,
            # a multi-worker run's only, as the command line allows it
            **({"worker_timeout": self.worker_timeout} if self.strategy == "multiworker" else {}),
        }


def check_guard(guard, path):
    """InputError unless each of the collapse guard's recorded bands and counts is a finite number."""
    for name, value in guard.items():
        numbers = value if isinstance(value, (tuple, list)) else (value,)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
            raise InputError(f'{path}: config guard "{name}" must be finite numbers, got {value!r}')


EXPLAINER_ARCHITECTURES = ("unet", "encoder_decoder", "inversion")


@dataclass(frozen=True)
class ExplainerConfig:
    """Every hyperparameter of train_explainer.py (explainer.py says what each loss is)."""

    filters: int = 16  # the U-Net's width at full size (x2, x4 at the half and the quarter); the critic's too
    n_batch: int = 16  # the first half keeps its labels (identity), the second half is switched
    lr: float = 0.0002  # Adam, both models
    beta1: float = 0.5
    beta2: float = 0.999
    identity_weight: float = 30.0  # the change of an image kept at its own label, towards 0
    l1_weight: float = 3.0  # the switched images' mean absolute change
    tv_weight: float = 0.0  # their change's total variation
    cycle_weight: float = 0.0  # switched back to its own label, the image again
    guide_weight: float = 0.0  # a frozen classifier's cross-entropy for the target (needs --guide)
    ramp_steps: int = 0  # the identity, L1 and TV weights grow from a tenth to their values over these steps
    grey: bool = False  # one change for all channels: grey images (X-rays) stay grey
    architecture: str = "unet"  # or "encoder_decoder": the image through a code without skips; or "inversion":
    # an encoder to a trained generator's latent (explainer.py); inversion trains with filters, n_batch, lr and the betas only
    latent_weight: float = 0.0  # encoder_decoder: the price of the label a latent critic reads from the code

    def __post_init__(self):
        if self.architecture not in EXPLAINER_ARCHITECTURES:
            raise ValueError(f"architecture must be one of {', '.join(EXPLAINER_ARCHITECTURES)}, got {self.architecture!r}")

    def record(self):
        return dataclasses.asdict(self)


EXPLAINER_HYPERPARAMETERS = tuple(f.name for f in dataclasses.fields(ExplainerConfig))
