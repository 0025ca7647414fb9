"""The course, runnable: perceptrons and logic gates, computational graphs, numerical
gradients and gradient checking, and the experiments that show why each technique matters."""
