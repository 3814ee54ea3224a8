"""Campaigns: one template to a list of recipients, with pre-flight, pacing, progress and reports, and High Volume SMS."""
