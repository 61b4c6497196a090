"""``partkit check`` on a flash image or dump: which app boots, and that app itself.

A merged image or a device dump holds its own apps, so the app worth checking is the one
the bootloader starts: the otadata records pick a slot, and an empty or broken slot sends
the bootloader on to another one (:mod:`partkit.flash.bootpredict`). The running app is
cut to its image length (a slot keeps whatever an older, longer app left after it; the
bootloader loads only the image) and size-checked against its own slot.
"""

from __future__ import annotations

from partkit.check.findings import Finding
from partkit.common.errors import SourceLocation, error, warning
from partkit.common.record import Record
from partkit.flash import imagefile
from partkit.flash.appimage import read_image
from partkit.flash.bootpredict import predict_image_boot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from partkit.flash.appimage import ImageInfo
    from partkit.flash.bootpredict import BootPrediction
    from partkit.table.model import Partition, PartitionTable

__all__ = ["BootCheck", "check_image_boot"]


class BootCheck(Record):
    """The boot of ``image``: the prediction, the running app's image (None: nothing
    boots) and the findings (no bootable app: error; a fallback: warning)."""

    __slots__ = ("app", "findings", "image", "prediction")

    image: str
    prediction: BootPrediction
    app: ImageInfo | None
    findings: tuple[Finding, ...]

    def __init__(self, image: str, prediction: BootPrediction, app: ImageInfo | None,
                 findings: tuple[Finding, ...]) -> None:
        self._init(image=image, prediction=prediction, app=app, findings=findings)

    @property
    def running(self) -> Partition | None:
        return self.prediction.boots

    def as_dict(self) -> dict[str, object]:
        p = self.prediction
        return {
            "selection": p.selection,
            "start": p.start.name if p.start is not None else None,
            "boots": p.boots.name if p.boots is not None else None,
            "falls_back": p.falls_back,
            "tried": [t.name for t in p.tried],
            "outcome": p.outcome(),
        }


def running_app(image: str, slot: Partition) -> ImageInfo:
    """The app image in ``slot`` of ``image``, cut to its length (signature included)."""

    size = imagefile.image_size(image)
    data = imagefile.read_region(image, slot.offset, max(0, min(slot.size, size - slot.offset)))
    label = f"{image}:{slot.name}"
    info = read_image(data, label)
    if info.is_image and info.image_length is not None and info.trailing_bytes:
        info = read_image(data[:info.signed_length], label)
    return info


def check_image_boot(image: str, table: PartitionTable) -> BootCheck:
    """Predict the boot of a flash image or dump and read the app that starts."""

    prediction = predict_image_boot(image, table)
    where = SourceLocation(image)
    findings: list[Finding] = []
    app = None
    if prediction.boots is None:
        findings.append(Finding("no-bootable-app", error(
            f"{image}: {prediction.outcome()}", where,
            hint="write a valid app into the slot otadata selects (partkit image write), "
                 "or erase otadata to boot the factory app")))
    else:
        app = running_app(image, prediction.boots)
        if prediction.falls_back:
            findings.append(Finding("boot-fallback", warning(
                f"{image}: {prediction.outcome()}", where,
                hint="the selected slot is empty or holds no valid app; the checks below "
                     f"are for '{prediction.boots.name}', the app that actually runs")))
    return BootCheck(image, prediction, app, tuple(findings))
