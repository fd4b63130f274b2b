"""powerbus.adapters"""
