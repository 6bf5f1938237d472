"""A bidirectional LSTM for frozen weights: the same outputs as Keras' ``Bidirectional(LSTM(...))``, cheaper to train
through.

In:  x (batch, time, features) float32 and the weights of a Keras ``Bidirectional(LSTM(units,
     return_sequences=True))`` layer with the default activations (tanh, sigmoid recurrent activation).
Out: (batch, time, 2 * units): the forward direction's hidden states, then the backward direction's, per step.

Why: reprogramming trains delta only, so a training step needs the gradient with respect to the LSTM's input, never
with respect to its weights. Keras' generic recurrent loop on a CPU runs the two directions one after the other
and differentiates everything inside the loop. Here (1) the input projections x @ W + b of every step and both
directions are one matrix product before the loop, (2) both directions share one loop (a batched product with the
two recurrent kernels), and (3) the hand-written backward pass carries only what the input gradient needs: one
small product per step, then one large product for all steps' input gradients, and (4) XLA compiles the forward
and the backward loop, fusing each step's element-wise work. Gradients with respect to the weights are not
computed (they come back as None), so use this only where the weights are frozen.
"""

import tensorflow as tf


def _gates(z, units):
    """i, f, g, o of Keras' LSTM gate order from the pre-activations z (..., 4 * units)."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    return tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)


def frozen_bilstm(x, forward, backward):
    """Bidirectional LSTM over x (batch, time, d) with ``forward`` / ``backward`` = (kernel, recurrent, bias).

    The number of time steps must be known when the graph is built (it is for V2S: 125 frames).
    """
    if x.shape[1] is None:
        raise ValueError("frozen_bilstm needs a static number of time steps; got a sequence of unknown length")
    kernel = tf.stack([forward[0], backward[0]])  # (2, d, 4u)
    recurrent = tf.stack([forward[1], backward[1]])  # (2, u, 4u)
    bias = tf.stack([forward[2], backward[2]])  # (2, 4u)
    return _bilstm(x, kernel, recurrent, bias)


@tf.function(jit_compile=True)
def _forward(x, kernel, recurrent, bias):
    """Outputs (B, T, 2u), and the cell states (T, 2, B, u) and gates (T, 2, B, 4u) the backward pass needs."""
    units = recurrent.shape[1]
    steps = x.shape[1]  # static: XLA needs the loops' lengths when it compiles
    # Both directions as one stack: direction 1 reads the sequence backwards.
    sequences = tf.stack([x, tf.reverse(x, axis=[1])])  # (2, B, T, d)
    projected = tf.einsum("kbtd,kdg->ktbg", sequences, kernel) + bias[:, None, None, :]  # (2, T, B, 4u)
    projected = tf.transpose(projected, (1, 0, 2, 3))  # (T, 2, B, 4u)
    zeros = tf.zeros(tf.stack([2, tf.shape(x)[0], units]), x.dtype)

    def step(t, h, c, hs, cs, gs):
        z = projected[t] + tf.matmul(h, recurrent)  # (2, B, 4u)
        i, f, g, o = _gates(z, units)
        c = f * c + i * g
        h = o * tf.tanh(c)
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gs.write(t, tf.concat([i, f, g, o], axis=-1))

    arrays = [tf.TensorArray(x.dtype, size=steps) for _ in range(3)]
    _, _, _, hs, cs, gs = tf.while_loop(lambda t, *_: t < steps, step, (tf.constant(0), zeros, zeros, *arrays),
                                        maximum_iterations=steps)
    hidden = hs.stack()  # (T, 2, B, u)
    out = tf.concat([tf.transpose(hidden[:, 0], (1, 0, 2)),
                     tf.reverse(tf.transpose(hidden[:, 1], (1, 0, 2)), axis=[1])], axis=-1)  # (B, T, 2u)
    return out, cs.stack(), gs.stack()


@tf.function(jit_compile=True)
def _backward(upstream, kernel, recurrent, cells, gates):
    """dLoss / dx (B, T, d) from ``upstream`` = dLoss / dOutput (B, T, 2u)."""
    units = recurrent.shape[1]
    steps = upstream.shape[1]
    d_hidden = tf.stack([upstream[..., :units], tf.reverse(upstream[..., units:], axis=[1])])  # (2, B, T, u)
    d_hidden = tf.transpose(d_hidden, (2, 0, 1, 3))  # (T, 2, B, u)
    recurrent_t = tf.transpose(recurrent, (0, 2, 1))  # (2, 4u, u)
    cells_prev = tf.concat([tf.zeros_like(cells[:1]), cells[:-1]], axis=0)  # c_{t-1}, zeros before the first step
    zeros = tf.zeros_like(cells[0])

    def back(t, dh_next, dc_next, dzs):
        i, f, g, o = tf.split(gates[t], 4, axis=-1)
        tanh_c = tf.tanh(cells[t])
        dh = d_hidden[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
        dz = tf.concat([dc * g * i * (1.0 - i), dc * cells_prev[t] * f * (1.0 - f), dc * i * (1.0 - g * g),
                        dh * tanh_c * o * (1.0 - o)], axis=-1)  # (2, B, 4u)
        return t - 1, tf.matmul(dz, recurrent_t), dc * f, dzs.write(t, dz)

    _, _, _, dzs = tf.while_loop(lambda t, *_: t >= 0, back,
                                 (tf.constant(steps - 1), zeros, zeros, tf.TensorArray(upstream.dtype, size=steps)),
                                 maximum_iterations=steps)
    d_sequences = tf.einsum("tkbg,kdg->kbtd", dzs.stack(), kernel)  # (2, B, T, d)
    return d_sequences[0] + tf.reverse(d_sequences[1], axis=[1])


@tf.custom_gradient
def _bilstm(x, kernel, recurrent, bias):
    # stop_gradient: the compiled functions are never differentiated themselves (grad is their derivative), so
    # TensorFlow must not build a differentiable variant of them, which XLA cannot compile.
    kernel, recurrent, bias = (tf.stop_gradient(w) for w in (kernel, recurrent, bias))
    out, cells, gates = _forward(tf.stop_gradient(x), kernel, recurrent, bias)

    def grad(upstream):
        return _backward(tf.stop_gradient(upstream), kernel, recurrent, cells, gates), None, None, None

    return out, grad
