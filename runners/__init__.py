"""Runners: one package per command (`finetune`, `efficiency`); `tasks` holds what they share."""
