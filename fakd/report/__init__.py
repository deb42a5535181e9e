"""fakd.report"""
