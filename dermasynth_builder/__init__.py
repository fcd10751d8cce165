"""DermaSynth builder: synthetic dermatology image-text pairs from open image collections."""

__version__ = "0.1.0"
