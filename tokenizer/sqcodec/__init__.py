"""SQCodec ("One Quantizer is Enough"): one FSQ code per frame, 0.75-24 kbps at 16 and 24 kHz.

Names `load_tokenizer` / `--model` accept (see `loading.py`): `zhai-lw/SQCodec:<config>`,
`sqcodec-<alias>` (e.g. `sqcodec-6kbps`, `sqcodec-12kbps-24khz`), `<folder>:<config>` for a
local copy of the hub repository, and sonotok folders (config.json `model_type: "sqcodec"`).

| name | config | rate | frames/s | codes | kbps |
|---|---|---|---|---|---|
| sqcodec-0.75kbps | 0k75bps | 16 kHz | 44.44 | 117,649 | 0.75 |
| sqcodec-1.5kbps | 1k5bps | 16 kHz | 88.89 | 117,649 | 1.50 |
| sqcodec-3kbps | 3kbps | 16 kHz | 177.78 | 117,649 | 2.99 |
| sqcodec-6kbps (sqcodec) | 6kbps | 16 kHz | 355.56 | 117,649 | 5.99 |
| sqcodec-12kbps | 12kbps | 16 kHz | 666.67 | 250,047 | 11.95 |
| sqcodec-12kbps-24khz | 12kbps_24khz | 24 kHz | 666.67 | 250,047 | 11.95 |
| sqcodec-24kbps-24khz | 24kbps_24khz | 24 kHz | 1333.33 | 250,047 | 23.91 |
"""

from .configs import OFFICIAL_CONFIGS, SQCodecConfig
from .family import SQCodecTokenizer
from .model import SQCodecModel

__all__ = ["OFFICIAL_CONFIGS", "SQCodecConfig", "SQCodecModel", "SQCodecTokenizer"]
