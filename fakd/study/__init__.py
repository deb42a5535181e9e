"""fakd.study"""
