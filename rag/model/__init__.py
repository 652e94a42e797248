"""Model: the bundled embedding model, its conversion and ONNX export, behind one `Encoder` interface."""
