"""Voice prompts: the catalogue of texts, local TTS rendering, and the file paths Asterisk plays."""

from huiyan.prompts.catalog import LANGS, PROMPTS, prompt_file, prompt_language, prompt_path, prompt_text
from huiyan.prompts.synth import PromptError, PromptToolMissing, generate

__all__ = [
    "LANGS",
    "PROMPTS",
    "PromptError",
    "PromptToolMissing",
    "generate",
    "prompt_file",
    "prompt_language",
    "prompt_path",
    "prompt_text",
]
