"""The transcribe stage: long audio -> timestamped text and subtitles, in PyTorch or CTranslate2."""
