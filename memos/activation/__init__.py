"""Activation memory: memories kept as the KV cache of a rendered block."""

from .render import BlockMemory, render_block
from .service import Activation, ActivationMemory

__all__ = ["Activation", "ActivationMemory", "BlockMemory", "render_block"]
