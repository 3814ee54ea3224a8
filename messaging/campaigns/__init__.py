"""Campaigns: one template to a list of recipients, and High Volume SMS.

Pre-flight, pacing, progress and reports.
"""
