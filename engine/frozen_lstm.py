"""A bidirectional LSTM for frozen weights: the same outputs as Keras' ``Bidirectional(LSTM(...))``, cheaper to train
through.

In:  x (batch, time, features) float32 and the weights of a Keras ``Bidirectional(LSTM(units,
     return_sequences=True))`` layer with the default activations (tanh, sigmoid recurrent activation).
Out: (batch, time, 2 * units): the forward direction's hidden states, then the backward direction's, per step.

Why: reprogramming trains delta only, so a training step needs the gradient with respect to the LSTM's input, never
with respect to its weights, and Keras' generic recurrent loop on a CPU differentiates everything inside the loop.
Here (1) the input projections x @ W + b of every step are one matrix product before the loop, (2) the
hand-written backward pass carries only what the input gradient needs: one small product per step, then one large
product for all steps' input gradients, (3) XLA compiles each loop, fusing each step's element-wise work, and (4)
the two directions run as one batched loop on one thread, or as two loops side by side on two. Gradients with
respect to the weights are not computed (they come back as None), so use this only where the weights are frozen.
"""

import os

import tensorflow as tf


def _gates(z, units):
    """i, f, g, o of Keras' LSTM gate order from the pre-activations z (..., 4 * units)."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    return tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)


def frozen_bilstm(x, forward, backward):
    """Bidirectional LSTM over x (batch, time, d) with ``forward`` / ``backward`` = (kernel, recurrent, bias).

    The number of time steps must be known when the graph is built (it is for V2S: 125 frames). With one
    TensorFlow thread between ops the two directions share one loop (a batched product with both recurrent
    kernels, fewer steps to run); with more, they are two loops that TensorFlow runs at the same time.
    """
    if x.shape[1] is None:
        raise ValueError("frozen_bilstm needs a static number of time steps; got a sequence of unknown length")
    sequences = tf.stack([x, tf.reverse(x, axis=[1])])  # (2, B, T, d): direction 1 reads the sequence backwards
    weights = [tf.stack(pair) for pair in zip(forward, backward)]  # kernels (2, d, 4u), recurrent, biases
    threads = tf.config.threading.get_inter_op_parallelism_threads() or os.cpu_count()
    if threads == 1:
        hidden = _lstm(sequences, *weights)
    else:
        hidden = tf.concat([_lstm(sequences[k:k + 1], *(w[k:k + 1] for w in weights)) for k in (0, 1)], axis=0)
    return tf.concat([hidden[0], tf.reverse(hidden[1], axis=[1])], axis=-1)  # (B, T, 2u)


@tf.function(jit_compile=True)
def _forward(x, kernel, recurrent, bias):
    """LSTMs over stacked sequences x (K, B, T, d) with stacked weights (K, d, 4u), (K, u, 4u), (K, 4u).

    Returns the hidden states (K, B, T, u), and the cell states (T, K, B, u) and gates (T, K, B, 4u) the backward
    pass needs.
    """
    units = recurrent.shape[1]
    steps = x.shape[2]  # static: XLA needs the loops' lengths when it compiles
    projected = tf.einsum("kbtd,kdg->tkbg", x, kernel) + bias[None, :, None, :]  # (T, K, B, 4u), before the loop
    zeros = tf.zeros(tf.stack([x.shape[0], tf.shape(x)[1], units]), x.dtype)

    def step(t, h, c, hs, cs, gs):
        z = projected[t] + tf.matmul(h, recurrent)  # (K, B, 4u)
        i, f, g, o = _gates(z, units)
        c = f * c + i * g
        h = o * tf.tanh(c)
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gs.write(t, tf.concat([i, f, g, o], axis=-1))

    arrays = [tf.TensorArray(x.dtype, size=steps) for _ in range(3)]
    _, _, _, hs, cs, gs = tf.while_loop(lambda t, *_: t < steps, step, (tf.constant(0), zeros, zeros, *arrays),
                                        maximum_iterations=steps)
    return tf.transpose(hs.stack(), (1, 2, 0, 3)), cs.stack(), gs.stack()


@tf.function(jit_compile=True)
def _backward(upstream, kernel, recurrent, cells, gates):
    """dLoss / dx (K, B, T, d) from ``upstream`` = dLoss / dOutput (K, B, T, u)."""
    steps = upstream.shape[2]
    d_hidden = tf.transpose(upstream, (2, 0, 1, 3))  # (T, K, B, u)
    recurrent_t = tf.transpose(recurrent, (0, 2, 1))  # (K, 4u, u)
    cells_prev = tf.concat([tf.zeros_like(cells[:1]), cells[:-1]], axis=0)  # c_{t-1}, zeros before the first step
    zeros = tf.zeros_like(cells[0])

    def back(t, dh_next, dc_next, dzs):
        i, f, g, o = tf.split(gates[t], 4, axis=-1)
        tanh_c = tf.tanh(cells[t])
        dh = d_hidden[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
        dz = tf.concat([dc * g * i * (1.0 - i), dc * cells_prev[t] * f * (1.0 - f), dc * i * (1.0 - g * g),
                        dh * tanh_c * o * (1.0 - o)], axis=-1)  # (K, B, 4u)
        return t - 1, tf.matmul(dz, recurrent_t), dc * f, dzs.write(t, dz)

    _, _, _, dzs = tf.while_loop(lambda t, *_: t >= 0, back,
                                 (tf.constant(steps - 1), zeros, zeros, tf.TensorArray(upstream.dtype, size=steps)),
                                 maximum_iterations=steps)
    return tf.einsum("tkbg,kdg->kbtd", dzs.stack(), kernel)  # every step's input gradient in one product


@tf.custom_gradient
def _lstm(x, kernel, recurrent, bias):
    # stop_gradient: the compiled functions are never differentiated themselves (grad is their derivative), so
    # TensorFlow must not build a differentiable variant of them, which XLA cannot compile.
    kernel, recurrent, bias = (tf.stop_gradient(w) for w in (kernel, recurrent, bias))
    out, cells, gates = _forward(tf.stop_gradient(x), kernel, recurrent, bias)

    def grad(upstream):
        return _backward(tf.stop_gradient(upstream), kernel, recurrent, cells, gates), None, None, None

    return out, grad
