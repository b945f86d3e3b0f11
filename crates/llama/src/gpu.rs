//! Loading a model onto the devices its GPU plan asks for: `auto` fits as many layers as the
//! devices' free memory holds after the KV cache and a margin (llama.cpp's own fitting, a dry
//! run that measures each device), and falls back to the CPU with one warning when the GPU
//! fails; an explicit count that cannot be honoured is an error naming the cause.

use hearth_engine::error::LoadError;
use hearth_engine::gpu::{Device, GpuLayers, Placement};
use hearth_engine::LoadSpec;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::{list_llama_ggml_backend_devices, LlamaBackendDeviceType};
use std::pin::pin;

/// ggml's WARN log level: fitting's own lines below it go to the debug log.
const FIT_LOG_LEVEL: u32 = 3;

/// The GPU devices this build and machine have (empty on a CPU build or without a GPU).
pub fn devices() -> Vec<Device> {
    list_llama_ggml_backend_devices()
        .into_iter()
        .filter(|d| matches!(d.device_type, LlamaBackendDeviceType::Gpu | LlamaBackendDeviceType::IntegratedGpu))
        .map(|d| Device {
            name: d.name,
            description: d.description,
            backend: d.backend,
            memory_total: d.memory_total as u64,
            memory_free: d.memory_free as u64,
        })
        .collect()
}

/// Every backend this build has, for messages (`CPU`, `CPU, Vulkan`).
pub fn backends() -> String {
    let mut names: Vec<String> = list_llama_ggml_backend_devices().into_iter().map(|d| d.backend).collect();
    names.dedup();
    names.join(", ")
}

/// Loads `spec`'s model with `load`, placed as its plan says; `ctx` is the context it will get
/// (the KV cache counts when fitting).
///
/// # Errors
/// [`LoadError::NoGpu`] or [`LoadError::GpuLoad`] for an explicit placement that cannot be
/// honoured, and what `load` fails with on the CPU.
pub fn load(
    spec: &LoadSpec,
    ctx: &LlamaContextParams,
    load: &dyn Fn(&LlamaModelParams) -> Result<LlamaModel, LoadError>,
) -> Result<(LlamaModel, Placement), LoadError> {
    let plan = &spec.gpu;
    let gpus = devices();
    let cpu = |fallback: Option<String>| -> Result<(LlamaModel, Placement), LoadError> {
        // No device at all, so that not even a prompt's matrix products go to a GPU.
        let params = LlamaModelParams::default().with_n_gpu_layers(0);
        let model = load(&params.with_devices(&[]).map_err(|_| LoadError::Init)?)?;
        let total = model.n_layer() + 1;
        Ok((model, Placement { layers_gpu: 0, layers_total: total, devices: Vec::new(), device_bytes: 0, fallback }))
    };
    if plan.layers == GpuLayers::Count(0) {
        return cpu(None);
    }
    if gpus.is_empty() {
        if plan.layers.explicit() {
            return Err(LoadError::NoGpu(backends()));
        }
        return cpu(None);
    }
    let main_gpu = i32::try_from(plan.main_gpu).unwrap_or(0);
    let params = match plan.layers {
        GpuLayers::Auto => match fit(spec, ctx, plan.margin_bytes) {
            Ok(p) => p.with_main_gpu(main_gpu),
            Err(why) => {
                tracing::warn!(model = %spec.model.id, reason = %why, "the GPU cannot take this model; it runs on the CPU");
                return cpu(Some(why));
            }
        },
        GpuLayers::All => LlamaModelParams::default().with_n_gpu_layers(u32::MAX >> 1).with_main_gpu(main_gpu),
        GpuLayers::Count(n) => LlamaModelParams::default().with_n_gpu_layers(n).with_main_gpu(main_gpu),
    };
    let asked = params.n_gpu_layers();
    match load(&params) {
        Ok(model) => Ok(placed(model, asked, &gpus, spec)),
        Err(e) if plan.layers == GpuLayers::Auto => {
            let why = format!("loading with {asked} layers on the GPU failed ({e})");
            tracing::warn!(model = %spec.model.id, reason = %why, "falling back to the CPU");
            cpu(Some(why))
        }
        Err(_) => Err(LoadError::GpuLoad(plan.layers.to_string())),
    }
}

/// llama.cpp's fitting for `auto`: the layers (and split) that fit with `margin` bytes left on
/// each device, the context as given.
fn fit(spec: &LoadSpec, ctx: &LlamaContextParams, margin: u64) -> Result<LlamaModelParams, String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(spec.model.path.as_os_str().as_bytes()).map_err(|_| "a NUL in the path")?;
    let mut params = pin!(LlamaModelParams::default());
    let mut cparams = ctx.clone();
    let mut margins = vec![usize::try_from(margin).unwrap_or(usize::MAX); llama_cpp_2::max_devices().max(1)];
    let n_ctx = cparams.n_ctx().map_or(0, std::num::NonZeroU32::get);
    params
        .as_mut()
        .fit_params(&path, &mut cparams, &mut margins, n_ctx, FIT_LOG_LEVEL)
        .map_err(|e| format!("no placement fits the devices' free memory ({e:?})"))?;
    // Fitting leaves -1 (every layer) where the whole model fits.
    let layers = match params.n_gpu_layers() {
        n if n < 0 => u32::MAX >> 1,
        0 => return Err("not one layer fits the devices' free memory".into()),
        n => u32::try_from(n).unwrap_or(0),
    };
    Ok(LlamaModelParams::default().with_n_gpu_layers(layers))
}

/// The placement of a model loaded with `asked` layers on the GPU: the layers there, and the
/// device memory it took (free memory before and after, else the layers' share of the file).
fn placed(model: LlamaModel, asked: i32, before: &[Device], spec: &LoadSpec) -> (LlamaModel, Placement) {
    let total = model.n_layer() + 1;
    let layers_gpu = if asked < 0 { total } else { u32::try_from(asked).unwrap_or(0).min(total) };
    let after = devices();
    let measured: u64 = before.iter().zip(&after).map(|(b, a)| b.memory_free.saturating_sub(a.memory_free)).sum();
    let share = spec.model.size_bytes.saturating_mul(u64::from(layers_gpu)) / u64::from(total.max(1));
    let device_bytes = if measured > 0 { measured } else { share };
    tracing::info!(
        model = %spec.model.id,
        layers_gpu,
        layers_total = total,
        device_mib = device_bytes >> 20,
        devices = %after.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(","),
        "model placed"
    );
    (model, Placement { layers_gpu, layers_total: total, devices: after, device_bytes, fallback: None })
}
