"""fakd.models"""
