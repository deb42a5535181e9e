"""fakd.data"""
