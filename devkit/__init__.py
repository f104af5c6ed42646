"""What tests, the demo and the benchmarks build their inputs with: tiny random Whispers (``tiny``) and
synthesized speech (``synth``). Not packaged: pyproject's package list takes ``whisperft*`` only."""
