//! Where a model's layers go: the GPU plan a model is loaded with, and the placement the
//! backend reports once it is loaded (layers offloaded, and each device's memory).

use serde::{Deserialize, Serialize};

/// How many of a model's layers go to the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GpuLayers {
    /// As many as fit the devices' free memory after the KV cache and the margin (none
    /// without a GPU); a GPU that fails falls back to the CPU with a warning.
    #[default]
    Auto,
    /// Every layer; refused at load when that cannot be done.
    All,
    /// This many (more than the model has means all); 0 keeps the model on the CPU.
    Count(u32),
}

impl GpuLayers {
    /// Parses `auto`, `all` or a number (`--gpu-layers`, Ollama's `num_gpu`).
    ///
    /// # Errors
    /// A message naming what is accepted.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "all" | "max" => Ok(Self::All),
            n => n
                .parse::<u32>()
                .map(Self::Count)
                .map_err(|_| format!("expected auto, all or a number of layers, got {s:?}")),
        }
    }

    /// Whether this asks for the GPU by name (anything but auto and 0).
    pub fn explicit(self) -> bool {
        matches!(self, Self::All | Self::Count(1..))
    }
}

impl std::fmt::Display for GpuLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::All => f.write_str("all"),
            Self::Count(n) => write!(f, "{n}"),
        }
    }
}

/// How a model is to be placed on the devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuPlan {
    /// Layers on the GPU.
    pub layers: GpuLayers,
    /// The device that holds what is not split (and the KV cache with one device).
    pub main_gpu: u32,
    /// Proportions of the layers per device (empty: by free memory).
    pub tensor_split: Vec<f32>,
    /// Device memory left free per device when fitting `auto`, in bytes.
    pub margin_bytes: u64,
}

impl Default for GpuPlan {
    fn default() -> Self {
        Self { layers: GpuLayers::Auto, main_gpu: 0, tensor_split: Vec::new(), margin_bytes: 512 << 20 }
    }
}

/// One compute device as the backend sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Device {
    /// The backend's name for it (`Vulkan0`, `CUDA0`).
    pub name: String,
    /// What it is (`NVIDIA H100`, `llvmpipe`).
    pub description: String,
    /// Its backend (`Vulkan`, `CUDA`, `Metal`).
    pub backend: String,
    /// Its memory in bytes.
    pub memory_total: u64,
    /// Its free memory in bytes, when measured.
    pub memory_free: u64,
}

/// Where a loaded model's layers are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    /// Layers on a GPU.
    pub layers_gpu: u32,
    /// Layers in all (the output layer counted, as llama.cpp counts them).
    pub layers_total: u32,
    /// The GPU devices used, with their memory after the load.
    pub devices: Vec<Device>,
    /// Device memory this model took, in bytes (measured as the devices' free memory before
    /// and after it loaded, else estimated from the layers' share of the file).
    pub device_bytes: u64,
    /// Why the model is on the CPU although a GPU was asked for or present (`auto` fell back).
    pub fallback: Option<String>,
}

impl Placement {
    /// Whether any layer is on a GPU.
    pub fn on_gpu(&self) -> bool {
        self.layers_gpu > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_layers_parse_and_print() {
        assert_eq!(GpuLayers::parse("auto"), Ok(GpuLayers::Auto));
        assert_eq!(GpuLayers::parse("ALL"), Ok(GpuLayers::All));
        assert_eq!(GpuLayers::parse("12"), Ok(GpuLayers::Count(12)));
        assert!(GpuLayers::parse("-1").is_err());
        assert!(GpuLayers::parse("some").is_err());
        assert_eq!(GpuLayers::Count(3).to_string(), "3");
        assert!(GpuLayers::All.explicit() && GpuLayers::Count(2).explicit());
        assert!(!GpuLayers::Auto.explicit() && !GpuLayers::Count(0).explicit());
    }
}
