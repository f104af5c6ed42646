"""Speech synthesis with espeak-ng: the spoken clips of export's parity check.

espeak-ng speaks Swedish, English and many more languages offline. The test, demo and benchmark audio
built on it (voices, reverb, noise, Common Voice's encoding, long recordings) is in ``devkit/synth``,
outside the package.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from whisperft.errors import WhisperftError


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, out: Path, voice: str = "sv", speed: int = 160, pitch: int = 50) -> Path:
    """Synthesize ``text`` to a wav file with espeak-ng."""
    if not have_espeak():
        raise WhisperftError("espeak-ng is not installed (apt-get install espeak-ng)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
        check=True,
        capture_output=True,
    )
    return out
