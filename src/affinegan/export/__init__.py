"""The generator as ONNX graphs, generation with onnxruntime, and a static web page."""
