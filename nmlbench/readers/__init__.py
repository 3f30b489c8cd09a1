"""Dataset readers shared by the noise and pretraining stages (see `nmlbench.readers.base`)."""

from nmlbench.readers import files as _files  # noqa: F401  (registers imagefolder, npz, wds)
from nmlbench.readers import hf as _hf  # noqa: F401  (registers hf)
from nmlbench.readers.base import FORMATS as FORMATS
from nmlbench.readers.base import IMAGE_EXTS as IMAGE_EXTS
from nmlbench.readers.base import ReadSpec as ReadSpec
from nmlbench.readers.base import Records as Records
from nmlbench.readers.base import decode_image as decode_image
from nmlbench.readers.base import labels_from as labels_from
from nmlbench.readers.base import read_records as read_records
from nmlbench.readers.files import expand_shards as expand_shards
from nmlbench.readers.hf import HUB_PREFIX as HUB_PREFIX
