"""SFT, the modified DPO of Llama 3, and model averaging."""
