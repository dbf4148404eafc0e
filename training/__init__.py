"""bindcnn training side (the top of the house): datasets, the model, fitting, evaluation, export and the
saliency report. TensorFlow is imported here and in serving.attribution only, always lazily."""
