//! What a source hands to the model: one packed training sequence, text or multimodal.

use super::image_patches::ImagePatches;

/// One packed sequence of `seq_len + 1` token ids: the model reads `inputs()` and predicts
/// `targets()`. `loss_mask[i]` says whether token `i` is a text token whose prediction counts
/// (text and end-of-document tokens: true; image markers, placeholders and padding: false).
/// `images` are the images whose features replace the `image` placeholder tokens, in the order
/// the placeholders appear; image `j` owns `images[j].merged_tokens(k)` consecutive placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub tokens: Vec<u32>,
    pub loss_mask: Vec<bool>,
    pub images: Vec<ImagePatches>,
}

impl Sequence {
    /// The `seq_len` input ids.
    pub fn inputs(&self) -> &[u32] {
        &self.tokens[..self.tokens.len() - 1]
    }

    /// The `seq_len` target ids (inputs shifted by one).
    pub fn targets(&self) -> &[u32] {
        &self.tokens[1..]
    }

    /// Whether the loss counts at each of the `seq_len` target positions.
    pub fn target_mask(&self) -> &[bool] {
        &self.loss_mask[1..]
    }

    pub fn seq_len(&self) -> usize {
        self.tokens.len() - 1
    }

    /// Number of target positions whose loss counts.
    pub fn loss_tokens(&self) -> usize {
        self.target_mask().iter().filter(|&&m| m).count()
    }
}

/// The CoCa form of an image-text record: the image's patches and the caption's token ids
/// (without any special token; the caption decoder adds its own).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionPair {
    pub image: ImagePatches,
    pub caption: Vec<u32>,
}
