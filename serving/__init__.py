"""bindcnn serving side: encoding, ONNX Runtime predictor, BentoML services and the scoring client."""
