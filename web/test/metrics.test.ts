import { describe, expect, it } from 'vitest';
import { byLabel, parseMetrics, point, pushPoint, rates, sparkline, total } from '../src/lib/metrics';

const TEXT = `# HELP hearth_generated_tokens_total Tokens generated.
# TYPE hearth_generated_tokens_total counter
hearth_generated_tokens_total{model="a"} 100
hearth_generated_tokens_total{model="b"} 50
# TYPE hearth_request_duration_seconds histogram
hearth_request_duration_seconds_bucket{endpoint="/v1/chat/completions",le="0.005"} 1
hearth_request_duration_seconds_bucket{endpoint="/v1/chat/completions",le="+Inf"} 3
hearth_request_duration_seconds_sum{endpoint="/v1/chat/completions"} 1.25
hearth_queue_depth{model="a"} 2
hearth_active_sequences{model="a"} 3
hearth_kv_cache_used_cells{model="a"} 512
hearth_kv_cache_cells{model="a"} 8192
hearth_model_memory_bytes{model="a"} 1.5e9
hearth_model_memory_bytes{model="we\\"ird\\\\name"} 10
hearth_models_loaded 1
bad line here
hearth_nan NaN
`;

describe('metrics parser', () => {
  const m = parseMetrics(TEXT);

  it('reads samples with labels', () => {
    expect(m.get('hearth_generated_tokens_total')).toEqual([
      { name: 'hearth_generated_tokens_total', labels: { model: 'a' }, value: 100 },
      { name: 'hearth_generated_tokens_total', labels: { model: 'b' }, value: 50 },
    ]);
    expect(m.get('hearth_models_loaded')?.[0].value).toBe(1);
    expect(m.get('hearth_request_duration_seconds_bucket')?.[1].labels.le).toBe('+Inf');
    expect(m.get('hearth_model_memory_bytes')?.[1].labels.model).toBe('we"ird\\name');
    expect(Number.isNaN(m.get('hearth_nan')?.[0].value)).toBe(true);
    expect(m.has('bad')).toBe(false);
  });

  it('sums and groups', () => {
    expect(total(m, 'hearth_generated_tokens_total')).toBe(150);
    expect(total(m, 'missing')).toBe(0);
    expect(byLabel(m, 'hearth_model_memory_bytes', 'model').a).toBe(1.5e9);
    const p = point(m, 1000);
    expect(p).toMatchObject({ generatedTotal: 150, queueDepth: 2, activeSequences: 3, kvUsed: 512, kvCells: 8192 });
  });

  it('turns counters into rates, also across a restart', () => {
    const base = point(m, 0);
    const pts = [base, { ...base, t: 2000, generatedTotal: 250 }, { ...base, t: 4000, generatedTotal: 10 }];
    expect(rates(pts)).toEqual([50, 5]);
  });

  it('keeps a bounded history and draws sparklines', () => {
    let pts = [point(m, 0)];
    for (let i = 1; i < 200; i++) pts = pushPoint(pts, point(m, i), 90);
    expect(pts.length).toBe(90);
    expect(pts[0].t).toBe(110);
    expect(sparkline([0, 5, 10], 100, 20)).toBe('0.0,20.0 50.0,10.0 100.0,0.0');
    expect(sparkline([], 100, 20)).toBe('');
  });
});
