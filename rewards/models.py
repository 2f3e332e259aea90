"""Reward catalogue and redemptions (W1-W4): see the rewards issue."""
