"""Sluice: the event-driven file-processing pipeline behind app.py.

Everything here runs without Chalice or Lambda: the same code serves Lambda,
local_cloud and the tests.
"""
