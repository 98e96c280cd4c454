"""Built-in plugin implementations (NeMo, Hugging Face, Triton, Riva, TTS). Each registers through the
`asr_flywheel` entry-point group exactly like a third-party plugin; heavy libraries are imported lazily.
"""
