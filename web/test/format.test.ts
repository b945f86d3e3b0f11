import { describe, expect, it } from 'vitest';
import { gpuText } from '../src/lib/format';

describe('gpuText', () => {
  it('says where a model runs', () => {
    expect(gpuText({})).toBe('CPU');
    expect(gpuText({ gpu_layers: 0, gpu_fallback: 'no room' })).toBe('CPU (GPU fell back)');
    expect(gpuText({ gpu_layers: 31, layers_total: 31, devices: ['Vulkan0'], device_bytes: 98362432 })).toBe(
      '31/31 layers on Vulkan0 (93.8 MiB)',
    );
  });
});
