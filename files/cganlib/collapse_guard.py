"""The original's mode-collapse recovery as one unit that reads the three losses of a batch
and says what to do: print, snapshot, reload, abort. Its bands are config.GuardBands.
It holds the counters; the training loop holds the weights and acts on the decision."""

import math
from dataclasses import dataclass, field

from cganlib.config import GuardBands

# Print a log line every PRINT_EVERY batches, or when a loss is above these.
PRINT_EVERY = 5
PRINT_D_ABOVE = 1.10
PRINT_G_ABOVE = 1.80

# What each reload rule restores, in the order the rules are checked, by the original's names.
D_MODEL, G_MODEL, GAN_MODELS = "d_model", "g_model", "gan_models"

LOG_FORMAT = (
    ">%d/%d, %d/%d, d1=%.3f, d2=%.3f, g=%.3f, secs=%d, tryAgain=%d, nTripsOnSameSavedWts=%d, nSaves=%d"
)


def should_print(j, d1, d2, g):
    """The original prints batch j (0-based) every 5th batch or when a loss runs high."""
    return (j + 1) % PRINT_EVERY == 0 or d1 > PRINT_D_ABOVE or d2 > PRINT_D_ABOVE or g > PRINT_G_ABOVE


ORIGINAL_BANDS = GuardBands()


def outside(loss, low, high):
    """Whether a loss lies outside [low, high]. A NaN does: it compares False with every number,
    so `loss < low or loss > high` would let it pass."""
    return not low <= loss <= high


def in_save_band(d1, d2, g, bands=ORIGINAL_BANDS):
    return (bands.save_d1[0] < d1 < bands.save_d1[1] and bands.save_d2[0] < d2 < bands.save_d2[1]
            and bands.save_g[0] < g < bands.save_g[1])


@dataclass
class Decision:
    snapshot: bool = False
    reloads: list = field(default_factory=list)  # D_MODEL, G_MODEL, GAN_MODELS in rule order
    abort: bool = False


@dataclass
class CollapseGuard:
    gan_upper: float
    bands: GuardBands = field(default_factory=GuardBands)
    ijSave: int = -100
    nTryAgains: int = 0
    nTripsOnSameSavedWts: int = 0
    nSaves: int = 0

    def check(self, ij, d1, d2, g):
        """Update the counters for batch number ij (batches so far this run, this one
        included) with its losses, and return the Decision."""
        b = self.bands
        decision = Decision()
        if in_save_band(d1, d2, g, b):
            self.nTripsOnSameSavedWts = 0
            if ij - self.ijSave > b.min_batches_between_saves:
                self.nSaves += 1
                self.ijSave = ij
                decision.snapshot = True
        # The rules apply once a snapshot was taken, as in the original; a NaN loss trips them
        # before too (the trainer's first snapshot is the initial weights): it never recovers.
        if self.ijSave > 0 or any(math.isnan(loss) for loss in (d1, d2, g)):
            rules = (
                (D_MODEL, outside(d1, b.d_loss_low, b.d_loss_high)),
                (G_MODEL, outside(d2, b.d_loss_low, b.d_loss_high)),
                (GAN_MODELS, outside(g, b.g_loss_low, self.gan_upper)),
            )
            for name, tripped in rules:
                if tripped:
                    self.nTryAgains += 1
                    self.nTripsOnSameSavedWts += 1
                    decision.reloads.append(name)
        decision.abort = self.nTripsOnSameSavedWts > b.max_trips
        return decision
