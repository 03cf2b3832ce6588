"""Shipping a trial: ``artifacts`` (adapter, merged model, samples) and the model card.
"""
