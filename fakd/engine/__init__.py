"""fakd.engine"""
