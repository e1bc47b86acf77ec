"""Parametric memory: knowledge trained into a LoRA adapter of the chat model."""
