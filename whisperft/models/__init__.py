"""Models: resolving a spec, Whisper's rules, the bundled weights, CTranslate2 conversion, decoding."""
