"""The research core: a run's parameters, the data, the models, the attacks, saliency and masking, the training
methods (ST, SGT, AT-FGSM, SGA, ASGT and the baselines), the training loop and the robustness evaluation.
Nothing here knows about presets' batches, papermill or the book."""
