"""fakd.distill"""
