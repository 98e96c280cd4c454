"""The names the plugin registers: the catalogue entry's model name and the transcriber backend."""

MODEL = "cmu/pocketsphinx-en-us"
BACKEND = "pocketsphinx"
