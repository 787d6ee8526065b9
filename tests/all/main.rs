mod data;
mod placeholder {}
