"""The original's mode-collapse recovery as one unit that reads the three losses of a batch
and says what to do: print, snapshot, reload, abort.
It holds the counters; the training loop holds the weights and acts on the decision."""

from dataclasses import dataclass, field

# Print a log line every PRINT_EVERY batches, or when a loss is above these.
PRINT_EVERY = 5
PRINT_D_ABOVE = 1.10
PRINT_G_ABOVE = 1.80

# Save band: all three losses strictly inside these open intervals.
SAVE_D1 = (0.30, 0.95)
SAVE_D2 = (0.25, 0.95)
SAVE_G = (0.40, 1.50)
MIN_BATCHES_BETWEEN_SAVES = 8  # snapshot only if ij - ijSave > this

# Reload rules: a loss outside these limits restores the last snapshot.
D_LOSS_LOW, D_LOSS_HIGH = 0.001, 2.0
G_LOSS_LOW = 0.010  # the upper g limit is per dataset (Dataset.gan_upper)
MAX_TRIPS = 20  # stop when nTripsOnSameSavedWts exceeds this

# What each reload rule restores, in the order the rules are checked, by the original's names.
D_MODEL, G_MODEL, GAN_MODELS = "d_model", "g_model", "gan_models"

LOG_FORMAT = (
    ">%d/%d, %d/%d, d1=%.3f, d2=%.3f, g=%.3f, secs=%d, tryAgain=%d, nTripsOnSameSavedWts=%d, nSaves=%d"
)


def should_print(j, d1, d2, g):
    """The original prints batch j (0-based) every 5th batch or when a loss runs high."""
    return (j + 1) % PRINT_EVERY == 0 or d1 > PRINT_D_ABOVE or d2 > PRINT_D_ABOVE or g > PRINT_G_ABOVE


def in_save_band(d1, d2, g):
    return SAVE_D1[0] < d1 < SAVE_D1[1] and SAVE_D2[0] < d2 < SAVE_D2[1] and SAVE_G[0] < g < SAVE_G[1]


@dataclass
class Decision:
    snapshot: bool = False
    reloads: list = field(default_factory=list)  # D_MODEL, G_MODEL, GAN_MODELS in rule order
    abort: bool = False


@dataclass
class CollapseGuard:
    gan_upper: float
    ijSave: int = -100
    nTryAgains: int = 0
    nTripsOnSameSavedWts: int = 0
    nSaves: int = 0

    def check(self, ij, d1, d2, g):
        """Update the counters for batch number ij (batches so far this run, this one
        included) with its losses, and return the Decision."""
        decision = Decision()
        if in_save_band(d1, d2, g):
            self.nTripsOnSameSavedWts = 0
            if ij - self.ijSave > MIN_BATCHES_BETWEEN_SAVES:
                self.nSaves += 1
                self.ijSave = ij
                decision.snapshot = True
        if self.ijSave > 0:
            rules = (
                (D_MODEL, d1 < D_LOSS_LOW or d1 > D_LOSS_HIGH),
                (G_MODEL, d2 < D_LOSS_LOW or d2 > D_LOSS_HIGH),
                (GAN_MODELS, g < G_LOSS_LOW or g > self.gan_upper),
            )
            for name, tripped in rules:
                if tripped:
                    self.nTryAgains += 1
                    self.nTripsOnSameSavedWts += 1
                    decision.reloads.append(name)
        decision.abort = self.nTripsOnSameSavedWts > MAX_TRIPS
        return decision
