// AudioWorklet of the dispatcher console's microphone capture (see
// VoiceSender in voice.js). It runs on the audio thread of the capture
// AudioContext, cuts the microphone's 128-sample render quanta into whole
// Opus frames (20 ms: 320 samples at 16 kHz) and posts each to the page with
// the context time of its first sample, so the voice header's timestamp is
// the capture time of that sample (voice.md §3.1). It posts nothing unless
// told `{active: true}`: only while the dispatcher holds the floor.
'use strict';

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frameSamples = options.processorOptions.frameSamples;
    this.active = false;
    this.frame = null;
    this.filled = 0;
    this.frameTime = 0;
    this.port.onmessage = (e) => {
      this.active = e.data.active;
      this.frame = null; // a new burst starts with a fresh frame
    };
  }

  process(inputs) {
    const input = inputs[0][0]; // mono: the node's channelCount is 1, explicit
    if (!this.active || !input) return true;
    let offset = 0;
    while (offset < input.length) {
      if (!this.frame) {
        this.frame = new Float32Array(this.frameSamples);
        this.filled = 0;
        this.frameTime = (currentFrame + offset) / sampleRate;
      }
      const n = Math.min(input.length - offset, this.frameSamples - this.filled);
      this.frame.set(input.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.frameSamples) {
        this.port.postMessage({ samples: this.frame, time: this.frameTime }, [this.frame.buffer]);
        this.frame = null;
      }
    }
    return true;
  }
}

registerProcessor('ptt-capture', CaptureProcessor);
