"""De-identification on the way out: the Basic Application Level Confidentiality Profile.

:class:`Deidentifier` applies the profile's table (:mod:`.confidentiality_profile`) to pydicom
datasets, in the main dataset and inside every sequence item, removes private attributes and
overlay data, and marks the result (Patient Identity Removed ``YES``, De-identification Method
and its code). One deidentifier serves one export: a UID it replaces always gets the same new
UID, so a segmentation written from a de-identified image still references that image, and the
images of one study or series stay grouped.

Where the profile leaves a choice (``X/Z``, ``X/D``, ``X/Z/D``), an attribute is removed unless
the IODs segstudio writes need it (:data:`_NEEDS_VALUE`, :data:`_NEEDS_PRESENCE`); ``Z/D`` gets
a dummy value, which keeps any IOD valid; ``X/Z/U*`` sequences stay with their UIDs replaced.
"""

from __future__ import annotations

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import generate_uid

from segstudio.io.confidentiality_profile import profile_actions

METHOD = "segstudio: DICOM PS3.15 E.1-1 Basic Application Confidentiality"
# Type 1 in a module segstudio writes (Enhanced General Equipment of the Segmentation IOD).
_NEEDS_VALUE = frozenset({"DeviceSerialNumber"})
# Type 2 in a module segstudio writes (General Image's Content Date/Time are Z/D already).
_NEEDS_PRESENCE = frozenset({"ReferencedStudySequence"})
# Dummy values by value representation: valid for the VR and recognisably not real.
_DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMOUS",
          "AS": "000Y", "IS": "0", "DS": "0", "CS": "ANONYMOUS", "SH": "ANONYMOUS",
          "LO": "ANONYMOUS", "ST": "ANONYMOUS", "LT": "ANONYMOUS", "UT": "ANONYMOUS",
          "UC": "ANONYMOUS", "AE": "ANONYMOUS"}


def profile_tags() -> dict[BaseTag, str]:
    """The profile's table by tag (keywords resolved through pydicom's dictionary)."""
    return {BaseTag(tag_for_keyword(k)): a for k, a in profile_actions().items()}


def is_overlay_data(tag: BaseTag) -> bool:
    """Overlay Data and Overlay Comments of any overlay plane (groups 6000–601E)."""
    return 0x6000 <= tag.group <= 0x601E and tag.group % 2 == 0 and tag.element in (0x3000, 0x4000)


class Deidentifier:
    """Applies the profile to datasets, with one UID mapping for everything it sees."""

    def __init__(self) -> None:
        self._table = profile_tags()
        self.uids: dict[str, str] = {}
        self._replace_uids = True

    def new_uid(self, uid: str) -> str:
        """The replacement of ``uid``: made on first sight, the same ever after."""
        uid = str(uid)
        if uid not in self.uids:
            self.uids[uid] = generate_uid()
        return self.uids[uid]

    def apply(self, ds: Dataset, *, uids: bool = True) -> Dataset:
        """De-identify ``ds`` in place (and return it); file meta's instance UID follows.
        ``uids=False`` leaves UIDs alone: for an object made from de-identified sources, whose
        UIDs are new already (replacing them again would break its references)."""
        self._replace_uids = uids
        self._clean(ds)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = Sequence([code])
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _clean(self, ds: Dataset) -> None:
        for elem in list(ds):
            tag = elem.tag
            if tag.is_private or is_overlay_data(tag):
                del ds[tag]
                continue
            action = self._table.get(tag)
            if action is None:
                if elem.VR == "SQ":
                    for item in elem.value or ():
                        self._clean(item)
                continue
            self._act(ds, elem, action)

    def _act(self, ds: Dataset, elem, action: str) -> None:
        keyword = elem.keyword
        if action == "X/Z/U*":
            for item in elem.value or ():
                self._clean(item)
            return
        if action in ("X/Z", "X/D", "X/Z/D"):
            if keyword in _NEEDS_VALUE and "D" in action:
                action = "D"
            elif keyword in _NEEDS_PRESENCE and "Z" in action:
                action = "Z"
            else:
                action = "X"
        elif action == "Z/D":
            action = "D"
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else None
        elif action == "U":
            if elem.VR == "UI" and elem.value and self._replace_uids:
                values = elem.value if elem.VM > 1 else [elem.value]
                new = [self.new_uid(v) for v in values]
                elem.value = new if elem.VM > 1 else new[0]
        else:                                    # D
            elem.value = _dummy(elem)

    def cleaned_copy(self, ds: Dataset) -> Dataset:
        """A de-identified deep copy of ``ds``, ready to be saved (the original is left as it
        was). A deflated data set is to be written back uncompressed: its pixel data is not
        compressed, and the deflated encoding is one few readers take."""
        import copy

        from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

        clean = self.apply(copy.deepcopy(ds))
        meta = getattr(clean, "file_meta", None)
        if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
        return clean


def _dummy(elem):
    vr = elem.VR if elem.VR != "UN" else dictionary_VR(elem.tag)
    if vr == "SQ":
        return Sequence()           # a sequence's dummy: no items, nothing to identify
    if vr == "UI":
        return generate_uid()
    return _DUMMY.get(vr, "ANONYMOUS")
