"""Settings of the biosignal images, one frozen dataclass so they can be fingerprinted.

The paper (Sec. III-C, Fig. 3) names four 2D views of a 1D physiological signal
but gives no plotting parameters; the defaults below are ours and every one of
them is recorded in the image store's fingerprint, so a store rendered with
other settings is never silently mixed with this one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from painformer.errors import InputError
from painformer.names import SIGNAL_REPRESENTATIONS, SIGNALS, SPECTROGRAM_REPRESENTATIONS

# The renderer draws the image representations of a signal (the video representation,
# frames, is not its business).
REPRESENTATIONS: tuple[str, ...] = SIGNAL_REPRESENTATIONS
__all__ = ["REPRESENTATIONS", "SIGNALS", "SPECTROGRAM_REPRESENTATIONS", "RenderParams", "check_representation"]

# matplotlib's default colour cycle starts with this blue ("C0"), the colour of a
# plain `plt.plot`, which is what a waveform figure in a paper usually looks like.
MATPLOTLIB_BLUE: tuple[int, int, int] = (31, 119, 180)
WHITE: tuple[int, int, int] = (255, 255, 255)


def _check_colour(name: str, colour: tuple[int, ...]) -> None:
    if len(colour) != 3 or any(not 0 <= int(c) <= 255 for c in colour):
        raise InputError(f"render parameter {name}: expected three integers 0..255, got {colour!r}")


@dataclass(frozen=True)
class RenderParams:
    """How a signal becomes a ``size`` x ``size`` RGB image.

    Waveform (amplitude over time, axes off, the curve fills the image):
      line_width      line thickness in output pixels (2.0 px = matplotlib's 1.44 pt at 100 dpi)
      line_colour     RGB of the line; background: RGB of the canvas
      margin          empty fraction of the height kept above and below the curve,
                      so the thick line is not clipped at the extremes
      supersample     horizontal sub-columns per output pixel for anti-aliasing
                      (the vertical direction is anti-aliased exactly)

    Spectrograms (scipy.signal STFT of the whole signal, batched):
      window, nperseg, noverlap, nfft, detrend, scaling   as in scipy.signal.spectrogram;
                      256-sample Hann segments at 512 Hz are 0.5 s long (2 Hz bins); a
                      32-sample hop (noverlap 224) gives 81 time steps for BioVid's 5.5 s,
                      8 per window length, which bilinear resampling turns into 224 columns
      unwrap_axis     spec_phase unwraps the STFT angle along "frequency" (what
                      scipy.signal.spectrogram(mode="phase") and matplotlib's
                      specgram(mode="phase") do) or along "time"
      psd_dynamic_range_db   spec_psd shows 10*log10(PSD) clipped to this many dB below
                      the sample's maximum, so numerically empty bands (filtered out,
                      DC removed by detrending) do not stretch the colour scale
      colormap        matplotlib colour map, turned once into a 256-entry lookup table
      interpolation   "bilinear" or "nearest": resampling of the (frequency, time) map
                      to the image; low frequencies are at the bottom

    Both:
      value_range     None: per-sample min-max normalisation (each image uses its full
                      range, as an autoscaled figure does); or a fixed (low, high) of the
                      plotted quantity (signal units, radians, or dB) shared by all samples
    """

    size: int = 224
    line_width: float = 2.0
    line_colour: tuple[int, int, int] = MATPLOTLIB_BLUE
    background: tuple[int, int, int] = WHITE
    margin: float = 0.05
    supersample: int = 4
    window: str = "hann"
    nperseg: int = 256
    noverlap: int = 224
    nfft: int | None = None
    detrend: str = "constant"
    scaling: str = "density"
    unwrap_axis: str = "frequency"
    psd_dynamic_range_db: float | None = 100.0
    colormap: str = "viridis"
    interpolation: str = "bilinear"
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.size < 8:
            problems.append(f"size {self.size} < 8")
        if not self.line_width > 0:
            problems.append(f"line_width {self.line_width} must be > 0")
        if not 0 <= self.margin < 0.5:
            problems.append(f"margin {self.margin} must be in [0, 0.5)")
        if self.supersample < 1:
            problems.append(f"supersample {self.supersample} must be >= 1")
        if self.nperseg < 2 or not 0 <= self.noverlap < self.nperseg:
            problems.append(f"need nperseg >= 2 and 0 <= noverlap < nperseg, got {self.nperseg}, {self.noverlap}")
        if self.nfft is not None and self.nfft < self.nperseg:
            problems.append(f"nfft {self.nfft} < nperseg {self.nperseg}")
        if self.detrend not in ("constant", "linear", "none"):
            problems.append(f"detrend {self.detrend!r} not in constant|linear|none")
        if self.scaling not in ("density", "spectrum"):
            problems.append(f"scaling {self.scaling!r} not in density|spectrum")
        if self.unwrap_axis not in ("frequency", "time"):
            problems.append(f"unwrap_axis {self.unwrap_axis!r} not in frequency|time")
        if self.psd_dynamic_range_db is not None and not self.psd_dynamic_range_db > 0:
            problems.append(f"psd_dynamic_range_db {self.psd_dynamic_range_db} must be > 0")
        if self.interpolation not in ("bilinear", "nearest"):
            problems.append(f"interpolation {self.interpolation!r} not in bilinear|nearest")
        if self.value_range is not None and not (
            len(self.value_range) == 2 and self.value_range[0] < self.value_range[1]
        ):
            problems.append(f"value_range {self.value_range!r} must be (low, high) with low < high")
        if problems:
            raise InputError("invalid render parameters: " + "; ".join(problems))
        _check_colour("line_colour", self.line_colour)
        _check_colour("background", self.background)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, recorded in image stores' fingerprints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RenderParams:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown render parameters: {', '.join(sorted(unknown))}")
        fixed = dict(values)
        for key in ("line_colour", "background", "value_range"):
            if fixed.get(key) is not None:
                fixed[key] = tuple(fixed[key])
        return cls(**fixed)


def check_representation(representation: str) -> None:
    if representation not in REPRESENTATIONS:
        raise InputError(f"unknown representation {representation!r}; expected one of {', '.join(REPRESENTATIONS)}")
