"""Adapters for agent frameworks (LangGraph, the OpenAI Agents SDK, smolagents), each
importing its framework only when used."""
